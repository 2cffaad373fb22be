//! The distributed sampler gives every world size the same global batches.

use chainrule_distributed::{DistributedSampler, Error};

#[test]
fn every_world_size_sees_the_same_global_batches() {
    let (len, batch, seed) = (100, 12, 5);
    let alone = DistributedSampler::for_rank(len, batch, 0, 1, seed).unwrap();
    assert_eq!(alone.batches_per_epoch(), 8);
    for world in [2, 3, 4, 6, 12] {
        for epoch in 0..2 {
            for k in 0..alone.batches_per_epoch() {
                let joined: Vec<usize> = (0..world)
                    .flat_map(|r| {
                        let s = DistributedSampler::for_rank(len, batch, r, world, seed).unwrap();
                        assert_eq!(s.local_batch_size(), batch / world);
                        s.local_batch(epoch, k)
                    })
                    .collect();
                assert_eq!(
                    joined,
                    alone.local_batch(epoch, k),
                    "world {world}, batch {k}"
                );
            }
        }
    }
    let epoch: Vec<Vec<usize>> = alone.epoch(0).collect();
    assert_eq!(epoch.len(), 8);
    let mut seen: Vec<usize> = epoch.concat();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 96, "a batch repeats an example");
    assert_ne!(
        alone.epoch_order(0),
        alone.epoch_order(1),
        "epochs share an order"
    );
}

#[test]
fn batches_that_do_not_split_are_errors_naming_the_caller() {
    for (batch, rank, world, needle) in [
        (10, 0, 4, "does not split evenly over 4 ranks"),
        (0, 0, 1, "at least one example"),
        (200, 0, 2, "larger than the 100 examples"),
        (10, 2, 2, "rank 2 is not a rank"),
    ] {
        let err = DistributedSampler::for_rank(100, batch, rank, world, 0).unwrap_err();
        assert!(matches!(err, Error::Batch { .. }));
        let msg = err.to_string();
        assert!(
            msg.contains(needle) && msg.contains("tests/sampler.rs"),
            "{msg}"
        );
    }
}
