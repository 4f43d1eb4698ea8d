#[rmi::expose]
pub trait Store {
    async extern "C" fn get(&self, key: u64) -> u64;
}

fn main() {}
