#[rmi::expose]
pub trait Link {
    async fn connect(&self, peer: String) -> bool;
}

fn main() {}
