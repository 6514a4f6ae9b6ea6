//! Reports of finished runs: the side-by-side table and the JSON report.

pub mod json;
pub mod table;
