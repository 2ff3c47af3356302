//! Pure math of the losses: each loss is a value and a closed-form gradient, with the activation's
//! chain rule when the prediction holds logits. No I/O, no formatting; formulas and sources are in
//! `docs/math.md`.
//!
//! Every loss here except cross-entropy is a function of four sums per channel k,
//!
//!   I_k = Σ_i s_ki·g_ki,   S_k = Σ_i s_ki,   Q_k = Σ_i s_ki²,   G_k = Σ_i g_ki,
//!
//! so its gradient with respect to the probabilities has the form
//!
//!   dL/ds_ki = P_k·g_ki + R_k + T_k·s_ki,    P = ∂L/∂I,  R = ∂L/∂S,  T = 2·∂L/∂Q,
//!
//! which takes exactly two values per channel (P + R on foreground, R on background) whenever the
//! loss does not use Q (T = 0). Cross-entropy adds a per-voxel term. The pieces:
//! - [`spec`]: the loss families and their options; [`preset`]: what each framework trains with;
//! - [`sums`]: the reduction pass over a case;
//! - [`family`]: value and coefficients (P, R, T) from the sums;
//! - [`ce`]: cross-entropy, value and per-voxel gradient;
//! - [`kernel`]: the gradient on a block of voxels, through the activation;
//! - `exp`: the exponential the activations use (branch-free, vectorises).

pub mod activation;
pub mod ce;
mod exp;
pub mod family;
pub mod kernel;
pub mod preset;
mod reduce;
pub mod spec;
pub mod sums;

pub use activation::Activation;
pub use family::Evaluation;
pub use kernel::GradientKernel;
pub use preset::Preset;
pub use spec::{DiceForm, LossConfig, LossKind, LossSpec, WeightType};
pub use sums::{CaseSums, ChannelSums};
