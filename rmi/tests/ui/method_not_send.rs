use std::rc::Rc;

#[rmi::expose]
pub trait Counter {
    async fn count(&self) -> u64;
}

struct Local;

impl Counter for Local {
    async fn count(&self) -> u64 {
        let shared = Rc::new(7);
        std::future::ready(()).await;
        *shared
    }
}

fn main() {}
