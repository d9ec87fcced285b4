//! The TDS 7.4 wire protocol as the simulated server needs it: packets, PRELOGIN/LOGIN7,
//! RPC and batch parsing, and the tokens of its answers. Pure functions over bytes, so the
//! fuzz target and the unit tests reach every parser without a socket.

pub mod login;
pub mod packet;
pub mod rpc;
pub mod tokens;
