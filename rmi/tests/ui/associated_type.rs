#[rmi::expose]
pub trait Store {
    type Value;
    async fn get(&self, key: String) -> u64;
}

fn main() {}
