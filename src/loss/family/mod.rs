//! The loss families — one file each — and their catalogue: the families by name, and every loss
//! parameter in one table.
//!
//! A family is described once, in its own file: the parameters it reads, its formula (with its
//! source), and its value and coefficients (P, R, T) from the sums ([`Family`]). This file lists
//! the family files, names the families (one line each in [`LossKind`] and in
//! [`LossKind::family`]) and holds the parameters (one entry each in the table below, from which
//! the resolved parameters [`LossSpec`], the explicit ones [`LossPatch`] and their names
//! [`LossParam`] are made). Adding a family touches its own file, this one, the docs
//! (docs/math.md) and its test (tests/losses.rs). Ratio-type families (Dice, Jaccard, Tversky and
//! their squared forms) share [`ratio`].

pub mod cross_entropy;
pub mod dice;
pub mod dice_ce;
pub mod generalized_dice;
pub mod interface;
pub mod jaccard;
pub mod log_cosh_dice;
pub mod mimic;
pub mod ratio;
pub mod squared_dice;
pub mod squared_jaccard;
pub mod tversky;

pub use generalized_dice::WeightType;
pub use interface::{ChannelEval, Coefficients, Family, Reduction, SumPart};
pub use ratio::DiceForm;

use super::activation::Activation;
use super::params::{any, loss_parameters, nonnegative, nonnegative_each, positive};
use super::preset::Preset;
use crate::names::named_enum;

named_enum! {
    /// A loss family.
    pub enum LossKind: "loss" {
        /// Soft Dice (MONAI `DiceLoss`).
        Dice = "dice",
        /// Soft Jaccard / IoU (MONAI `DiceLoss(jaccard=True)`).
        Jaccard = "jaccard",
        /// Dice with Σs² + Σg² in the denominator (V-Net; MONAI `squared_pred=True`).
        SquaredDice = "squared-dice",
        /// Jaccard with squared sums (MONAI `squared_pred=True, jaccard=True`).
        SquaredJaccard = "squared-jaccard",
        /// Generalized Dice (Sudre et al. 2017; MONAI `GeneralizedDiceLoss`).
        GeneralizedDice = "generalized-dice",
        /// Tversky (MONAI `TverskyLoss`).
        Tversky = "tversky",
        /// log(cosh(Dice loss)) (Jadon 2020).
        LogCoshDice = "log-cosh-dice",
        /// Cross-entropy.
        Ce = "ce",
        /// −Σ_k w_k Σ_i s_ki·g_ki: the output times a negative of the ground truth.
        Mimic = "mimic",
        /// λ_dice·Dice + λ_ce·cross-entropy (MONAI `DiceCELoss`, nnU-Net `DC_and_CE_loss`).
        DiceCe = "dice+ce",
    }
}

/// The parameters several families read: the activation, smoothing, background, class weights, and
/// the forms presets choose. Dice, Jaccard and their squared forms read exactly these.
pub const SHARED: &[LossParam] = &[
    LossParam::Activation,
    LossParam::SmoothNr,
    LossParam::SmoothDr,
    LossParam::IncludeBackground,
    LossParam::ClassWeights,
    LossParam::DiceForm,
    LossParam::DenominatorFloor,
    LossParam::SkipEmpty,
];

impl LossKind {
    /// The family's description.
    pub fn family(self) -> &'static dyn Family {
        match self {
            LossKind::Dice => &dice::Dice,
            LossKind::Jaccard => &jaccard::Jaccard,
            LossKind::SquaredDice => &squared_dice::SquaredDice,
            LossKind::SquaredJaccard => &squared_jaccard::SquaredJaccard,
            LossKind::GeneralizedDice => &generalized_dice::GeneralizedDice,
            LossKind::Tversky => &tversky::Tversky,
            LossKind::LogCoshDice => &log_cosh_dice::LogCoshDice,
            LossKind::Ce => &cross_entropy::CrossEntropy,
            LossKind::Mimic => &mimic::Mimic,
            LossKind::DiceCe => &dice_ce::DiceCe,
        }
    }

    /// Whether the loss reads `param`.
    pub fn reads(self, param: LossParam) -> bool {
        matches!(param, LossParam::Loss | LossParam::LossWeight) || self.family().params().contains(&param)
    }

    /// Whether the loss has a cross-entropy part.
    pub fn has_ce(self) -> bool {
        self.family().has_ce()
    }

    /// Whether the loss has a sum-based (Dice-type) part: every family but cross-entropy alone,
    /// whose mean runs over the voxels.
    pub fn has_dice_part(self) -> bool {
        self.family().reduction() != Reduction::Voxels
    }
}

loss_parameters! {
    /// What the loss applies to the values in the prediction before computing Dice: none = the
    /// values are probabilities in [0, 1]; sigmoid / softmax = the values are logits, and the
    /// gradient is with respect to them (softmax needs at least two channels).
    activation: Activation = Activation::None; Activation, "NAME", User, any;
    /// ε added to the numerator 2·Σs·g (MONAI smooth_nr).
    smooth_nr: f64 = 1e-5; SmoothNr, "F", User, nonnegative;
    /// ε added to the denominator Σs + Σg (MONAI smooth_dr).
    smooth_dr: f64 = 1e-5; SmoothDr, "F", User, nonnegative;
    /// Whether channel 0 (background) takes part in the Dice-type part of the loss (MONAI
    /// include_background); cross-entropy always uses every channel, as MONAI and nnU-Net do.
    include_background: bool = true; IncludeBackground, "", User, any;
    /// One weight per channel 0..C−1 (MONAI weight of Dice-type losses, torch weight of
    /// cross-entropy, w_k of the mimic loss); none = all 1.
    class_weights: Option<Vec<f64>> = None; ClassWeights, "W0,W1,...", User, nonnegative_each;
    /// Generalized Dice class weights from the ground-truth volume G: square = 1/G², simple = 1/G,
    /// uniform = 1.
    w_type: WeightType = WeightType::Square; WType, "NAME", User, any;
    /// Tversky weight of false positives.
    alpha: f64 = 0.5; Alpha, "F", User, nonnegative;
    /// Tversky weight of false negatives.
    beta: f64 = 0.5; Beta, "F", User, nonnegative;
    /// Weight of the Dice part of dice+ce.
    lambda_dice: f64 = 1.0; LambdaDice, "F", User, nonnegative;
    /// Weight of the cross-entropy part of dice+ce.
    lambda_ce: f64 = 1.0; LambdaCe, "F", User, nonnegative;
    /// How a Dice term enters the loss value: one_minus = 1 − dice (MONAI, smp, Kervadec et al.),
    /// negative = −dice (nnU-Net). The gradient is the same (but for log-cosh-dice, whose tanh
    /// reads the value).
    dice_form: DiceForm = DiceForm::OneMinus; DiceForm, "NAME", Preset, any;
    /// Lower bound on a Dice denominator (nnU-Net clips at 1e-8, smp at its eps 1e-7); 0 = none.
    /// Where the bound is active the denominator is a constant.
    denominator_floor: f64 = 0.0; DenominatorFloor, "F", Preset, nonnegative;
    /// Channels without foreground voxels contribute 0 to the loss (smp).
    skip_empty: bool = false; SkipEmpty, "", Preset, any;
    /// Multiplies the loss and its gradient: the weight of this output in a deep-supervision sum
    /// (nnU-Net weights its full-resolution output by 1/Σ 2^−i over the outputs, the lowest output
    /// left out: 8/15 ≈ 0.533 with 5 outputs).
    loss_weight: f64 = 1.0; LossWeight, "F", User, positive;
}
