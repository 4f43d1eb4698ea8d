#[rmi::expose]
pub trait Store {
    async fn get(&self, key: String) -> u64
    where
        Self: Sized;
}

fn main() {}
