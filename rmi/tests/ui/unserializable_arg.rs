pub struct Point {
    pub x: i32,
    pub y: i32,
}

#[rmi::expose]
pub trait Plotter {
    async fn plot(&self, point: Point);
}

fn main() {}
