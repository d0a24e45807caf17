//! I/O behind small traits: one HTTP policy ([`http`]) used by the Azure ([`azure`]), ASM
//! ([`asm`]), Service Bus ([`servicebus`]) and Table Storage ([`store`]) clients; exported estates read from disk ([`estate_file`]).

pub mod asm;
pub mod azure;
pub mod estate_file;
pub mod http;
pub mod servicebus;
pub mod store;
