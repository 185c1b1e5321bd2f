//! Building images from a Containerfile subset: each RUN runs in a container of this crate
//! whose overlay upper directory becomes the new layer. (Interface stub.)

pub mod containerfile;
pub(crate) mod diff;
pub(crate) mod layout;
