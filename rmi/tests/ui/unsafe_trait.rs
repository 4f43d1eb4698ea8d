#[rmi::expose]
pub unsafe trait Store {
    async fn get(&self, key: String) -> u64;
}

fn main() {}
