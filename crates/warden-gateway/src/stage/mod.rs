//! The stages of a call, each a small type behind one of the two interfaces of [`crate::call`].
//! Their order is in [`crate::pipeline`].

pub mod adapt;
pub mod admit;
pub mod audit;
pub mod connect;
pub mod consent;
pub mod decide;
pub mod dlp;
pub mod forward;
pub mod local;
pub mod params;
mod relay;
pub mod route;

/// A stage's decision that must be waited for, boxed: stages are called through `dyn`, and a
/// boxed future also keeps the future of the whole pipeline small.
macro_rules! later {
    ($body:expr) => {
        $crate::call::Staged::Later(Box::pin(async move { $body }))
    };
}
pub(crate) use later;
