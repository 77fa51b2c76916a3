//! Operator tooling as a library, so tests can use it: the chain's certificates (PKI), store
//! enrolment and catalogue import.

pub mod catalogue;
pub mod pki;
pub mod replay;
