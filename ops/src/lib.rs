//! Operator tooling as a library, so tests can use it: the chain's certificates (PKI) and
//! store enrolment.

pub mod pki;
