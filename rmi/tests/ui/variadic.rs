#[rmi::expose]
pub trait Store {
    async fn get(&self, key: u64, rest: ...) -> u64;
}

fn main() {}
