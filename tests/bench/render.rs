//! `cargo bench --bench render` (being built).

fn main() {
    eprintln!("the render benchmark is not built yet");
}
