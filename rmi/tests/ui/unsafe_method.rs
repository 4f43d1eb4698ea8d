#[rmi::expose]
pub trait Store {
    async unsafe fn get(&self, key: String) -> u64;
}

fn main() {}
