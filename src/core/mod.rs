//! The pure core: plain data in, plain data out, no I/O, no clock, no errors
//! from the outside world. Everything here is tested with tables of cases.

pub mod anomaly;
pub mod approval;
pub mod catalog;
pub mod change;
pub mod compact;
pub mod current;
pub mod describe;
pub mod desired;
pub mod diff;
pub mod guards;
pub mod mapping;
pub mod plan;
pub mod queue;
pub mod record;
pub mod run;
mod sort;
