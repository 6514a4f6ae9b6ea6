//! Reports of finished runs: the side-by-side table, the JSON report, and
//! the logs in the kernel's formats.

pub mod json;
pub mod log;
pub mod table;
