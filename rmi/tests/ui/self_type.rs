#[rmi::expose]
pub trait Node {
    async fn child(&self) -> Option<Box<Self>>;
}

fn main() {}
