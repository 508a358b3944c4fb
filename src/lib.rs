//! iiif-process: IIIF Image API derivatives from master images, go-iiif compatible.
//!
//! One run: [`cli`] arguments -> [`settings`] (validated knobs) -> [`plan`] (which sources) -> [`run`] (the loop
//! over sources, each in [`source`]: read, plan, decode once, render every derivative) -> [`report`]. Pixels are
//! [`pipeline`]'s, codecs [`codec`]'s, bytes in and out [`store`]'s, IIIF parameters [`iiif`]'s.

pub mod cli;
pub(crate) mod codec;
pub(crate) mod iiif;
pub mod naming;
pub(crate) mod pipeline;
pub mod plan;
pub(crate) mod progress;
pub mod report;
pub(crate) mod report_html;
pub mod run;
pub(crate) mod services;
pub mod settings;
pub(crate) mod source;
pub mod store;
pub mod tiles;
pub mod watch;
