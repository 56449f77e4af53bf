//! Platforms know how to start, stop, kill and restart a node; the nemesis only asks them to.
//! `local` runs broker nodes as child processes on this machine.

pub mod local;
pub use local::LocalPlatform;
