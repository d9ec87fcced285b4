//! The simulated world the engine rehearses against.

pub mod chat_shell;
pub mod ps_eval;
pub mod ps_parse;
