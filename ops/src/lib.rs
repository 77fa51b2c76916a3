//! Operator tooling as a library, so tests can use it: the chain's certificates (PKI), store
//! enrolment, catalogue import, and a delaying TCP proxy for benchmarks.

pub mod campaigns;
pub mod catalogue;
pub mod delay;
pub mod members;
pub mod pki;
pub mod proxy;
pub mod replay;
