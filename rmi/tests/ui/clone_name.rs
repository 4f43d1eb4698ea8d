#[rmi::expose]
pub trait Sheep {
    async fn clone(&self) -> u8;
}

fn main() {}
