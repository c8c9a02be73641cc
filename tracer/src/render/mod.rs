//! Reports as people and CI systems read them: text, colour, JUnit, graphs.

pub mod color;
pub mod graph;
pub mod junit;
