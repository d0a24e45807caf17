//! Helpers shared by the integration tests: local fake servers that speak the services' wire
//! formats (ASM, ARM and Resource Graph, Entra ID, Service Bus), a stand-in for the Functions
//! host, the built binary run as an operator runs it, and the simulation of the incremental path.

pub mod azure_reader;
pub mod cli;
pub mod fake_asm;
pub mod fake_azure;
pub mod fake_entra;
pub mod fake_servicebus;
pub mod gated_ledger;
pub mod handler_world;
pub mod host_emulator;
pub mod sim;
pub mod template;
