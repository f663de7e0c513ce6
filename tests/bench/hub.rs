//! `cargo bench --bench hub` (being built).

fn main() {
    eprintln!("the hub benchmark is not built yet");
}
