//! Checkpoints in data-parallel training: rank 0 writes, every rank waits for it.

use std::path::Path;

use chainrule_autograd::Element;
use chainrule_nn::{checkpoint, ModuleState};

use crate::{Result, World};

/// Saves `module` from rank 0 only (the replicas are equal) and returns on every rank
/// once the file is complete, so no rank reads a half-written checkpoint. A failed
/// save is an error on every rank.
///
/// ```no_run
/// use chainrule_distributed::{save_on_main, World};
/// use chainrule_nn::layers::Linear;
/// use rand::SeedableRng;
/// let world = World::init()?;
/// let net = Linear::<f32>::new(4, 2, &mut rand::rngs::StdRng::seed_from_u64(0))?;
/// save_on_main(&world, &net, "net.safetensors")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// Rank 0's save failed (its own error there, [`crate::Error::PeerFailed`] elsewhere).
#[track_caller]
pub fn save_on_main<T: Element>(
    world: &World,
    module: &dyn ModuleState<T>,
    path: impl AsRef<Path>,
) -> Result<()> {
    let saved = if world.is_main() {
        checkpoint::save(module, path)
    } else {
        Ok(())
    };
    world.agree("saving the checkpoint", saved)
}
