//! Pure math of the losses: each loss is a value and a closed-form gradient, with the activation's
//! chain rule when the prediction holds logits. No I/O, no formatting; formulas and sources are in
//! `docs/math.md` and in each family's file.
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
//! - [`family`]: one file per family — the parameters it reads, its value and coefficients — and
//!   the catalogue: the families by name and the parameters, each in one table;
//! - [`preset`]: what each framework trains with; [`config`]: a request resolved and checked;
//! - [`sums`]: the reduction pass over a case; [`evaluation`]: value and coefficients from the sums;
//! - [`ce`]: cross-entropy, value and per-voxel gradient;
//! - [`activation`]: sigmoid and softmax and their chain rules;
//! - [`kernel`]: the gradient on a block of voxels, through the activation;
//! - [`mimic_weights`]: the weights with which the mimic loss has a loss's ground-truth part.

pub mod activation;
pub mod ce;
pub mod config;
pub mod evaluation;
pub mod family;
pub mod kernel;
pub mod mimic_weights;
pub mod params;
pub mod preset;
pub mod sums;

pub use activation::Activation;
pub use config::{compared_kinds, pairs, LossConfig, LossRequest};
pub use evaluation::Evaluation;
pub use family::{Coefficients, DiceForm, LossKind, LossParam, LossPatch, LossSpec, Reduction, WeightType};
pub use kernel::GradientKernel;
pub use mimic_weights::MimicWeights;
pub use preset::Preset;
pub use sums::{CaseSums, ChannelSums};
