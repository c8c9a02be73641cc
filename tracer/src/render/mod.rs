//! Reports as people and CI systems read them: text, JSON, colour, JUnit, graphs.

pub mod color;
pub mod doctor;
pub mod graph;
pub mod json;
pub mod junit;
pub mod output;
pub mod stored;
pub mod summary;
pub mod text;
pub mod tree;
