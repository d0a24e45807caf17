//! I/O behind small traits: one HTTP policy ([`http`]) used by the Azure ([`azure`]), ASM
//! ([`asm`]), Service Bus ([`servicebus`]) and Table Storage ([`store`]) clients.

pub mod asm;
pub mod azure;
pub mod http;
pub mod servicebus;
pub mod store;
