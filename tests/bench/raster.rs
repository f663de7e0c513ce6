//! `cargo bench --bench raster` (being built).

fn main() {
    eprintln!("the raster benchmark is not built yet");
}
