//! The buffer pool through the public API. One test: the pool is global, and tests
//! of one binary run on parallel threads.

use chainrule_tensor::{pool, Tensor};

#[test]
fn buffers_come_back_by_size_and_stay_under_the_limit() {
    pool::release();
    let n = pool::MIN_BYTES; // f32s: 4 × MIN_BYTES bytes
    let a = Tensor::<f32>::zeros(&[n]).unwrap();
    let ptr = a.data().as_ptr();
    drop(a);
    assert_eq!(pool::held_bytes(), 4 * pool::MIN_BYTES);

    // a request within a quarter below reuses it, zeroed; the pool is then empty
    let b = Tensor::<f32>::zeros(&[n - n / 8]).unwrap();
    assert_eq!(b.data().as_ptr(), ptr);
    assert!(b.data().iter().all(|&v| v == 0.0));
    assert_eq!(pool::held_bytes(), 0);
    drop(b);

    // larger, much smaller, or another element type: a buffer of its own
    for dims in [n + 1, n / 2] {
        let c = Tensor::<f32>::ones(&[dims]).unwrap();
        assert_ne!(c.data().as_ptr(), ptr, "{dims} elements");
        assert_eq!(c.data().iter().sum::<f32>(), dims as f32);
    }
    pool::release();

    // small buffers are not kept
    drop(Tensor::<f64>::zeros(&[16]).unwrap());
    assert_eq!(pool::held_bytes(), 0);

    // a buffer that would take the pool over its limit is freed instead
    let before = pool::limit();
    pool::set_limit(6 * pool::MIN_BYTES);
    let big = Tensor::<f32>::zeros(&[n]).unwrap(); // 4 × MIN_BYTES
    let halves = [
        Tensor::<f32>::zeros(&[n / 2]).unwrap(),
        Tensor::<f32>::zeros(&[n / 2]).unwrap(),
    ];
    drop(big);
    drop(halves); // the first fits beside the big one, the second does not
    assert_eq!(pool::held_bytes(), 6 * pool::MIN_BYTES);
    pool::set_limit(before);

    // a shared buffer is not pooled until its last holder drops it
    pool::release();
    let d = Tensor::<f32>::zeros(&[n]).unwrap();
    let e = d.clone();
    drop(d);
    assert_eq!(pool::held_bytes(), 0);
    drop(e);
    assert_eq!(pool::held_bytes(), 4 * pool::MIN_BYTES);
    pool::release();
    assert_eq!(pool::held_bytes(), 0);
}
