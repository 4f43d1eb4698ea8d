#[rmi::expose]
pub trait Store<T: Clone> {
    async fn get(&self, key: String) -> Option<T>;
}

fn main() {}
