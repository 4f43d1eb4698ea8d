use std::cell::Cell;

#[rmi::expose]
pub trait Counter {
    async fn count(&self) -> u64;
}

struct Local {
    count: Cell<u64>,
}

impl Counter for Local {
    async fn count(&self) -> u64 {
        self.count.get()
    }
}

async fn serve() -> Result<(), rmi::Error> {
    let daemon = rmi::Daemon::bind("127.0.0.1:0").await?;
    daemon.register(Local { count: Cell::new(0) })?;
    Ok(())
}

fn main() {
    let _ = serve;
}
