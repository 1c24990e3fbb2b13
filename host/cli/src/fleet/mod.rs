//! The fleet: gateways steered by desired state on the broker.
//!
//! | topic | retained | who writes |
//! |---|---|---|
//! | `gatehouse/v1/gateways/<id>/desired` | yes | the operator (`gatehouse fleet desire`, `fleet rollout`) |
//! | `gatehouse/v1/groups/<group>/desired` | yes | the operator |
//! | `gatehouse/v1/gateways/<id>/reported` | yes | the gateway, after each change and every interval |
//! | `gatehouse/v1/gateways/<id>/status` | yes | the gateway online; its last will offline |
//!
//! [`agent`] is the gateway's side, [`operator`] the operator's.

pub mod agent;
pub mod desired;
pub mod ledger;
pub mod operator;
pub mod report;
