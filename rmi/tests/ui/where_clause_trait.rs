#[rmi::expose]
pub trait Store
where
    Self: Sized,
{
    async fn get(&self, key: String) -> u64;
}

fn main() {}
