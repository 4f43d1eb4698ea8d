#[rmi::expose]
pub trait Geometry {
    async fn length(&self, (x, y): (f64, f64)) -> f64;
}

fn main() {}
