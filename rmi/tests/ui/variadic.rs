#[rmi::expose]
pub trait Store {
    async fn get(&self, key: u64, ...) -> u64;
}

fn main() {}
