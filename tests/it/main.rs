//! The one integration-test binary. Every module here drives the real
//! `labelhub` binary or the library's public API; shared helpers live in
//! `support`.

mod appliance;
mod apps;
mod auth;
mod auth_fuzz;
mod console;
mod faults;
mod front;
mod hub;
mod hub_crash;
mod inproc;
mod layers;
mod observe;
mod openapi;
mod policy;
mod printer_io;
mod quotas;
mod raster;
mod render;
mod support;
mod webdriver;
