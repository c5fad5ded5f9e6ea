//! `omni up`'s embedded stack started in-process on port 0, driven through the CLI library.

mod cli_errors;
mod journey;
mod seed;
mod support;
mod token;
