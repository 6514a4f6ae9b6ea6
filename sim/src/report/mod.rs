//! Reports of finished runs: the side-by-side table, the JSON report, and
//! the logs in the kernel's formats, timelines (Chrome trace JSON, SVG).

pub mod bench;
pub mod card;
pub mod explain;
pub mod explore;
pub mod html;
pub mod json;
pub mod layout;
pub mod log;
pub mod splat;
pub mod story;
pub mod table;
pub mod timeline;
pub mod verdict;
