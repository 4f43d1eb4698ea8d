//! Files sent both ways as streams of chunks: the socket demo's file transfer (Python's socket
//! recipes), done over rmi. `download` streams a stored file, `upload` stores one the client
//! streams; either runs as fast as the plain-socket file demo (README, "Files").

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The name the files server registers.
pub const NAME: &str = "files";

/// The size of the chunks a download is cut into.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// Why a file was not sent or stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum FileError {
    /// No file of that name is stored.
    #[error("no file '{0}' is stored")]
    NotFound(String),
    /// A name must be one plain file name.
    #[error("'{0}' is not a plain file name (no '/', no '..', not empty)")]
    BadName(String),
    /// The server's disk failed, or the upload broke: what it said.
    #[error("{0}")]
    Io(String),
}

/// Files, by name.
#[rmi::expose]
pub trait Files {
    /// The file `name`, in chunks of 64 KiB.
    async fn download(&self, name: String) -> Result<rmi::Stream<Vec<u8>>, FileError>;
    /// Stores what `chunks` holds as `name` (replacing a file of that name once all of it
    /// arrived); how many bytes it held.
    async fn upload(&self, name: String, chunks: rmi::Stream<Vec<u8>>) -> Result<u64, FileError>;
    /// The stored files and their sizes, by name.
    async fn list(&self) -> Result<Vec<(String, u64)>, FileError>;
}

/// Files stored in a directory.
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// Files in `dir`, which is made if missing.
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<FileStore> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(FileStore { dir })
    }

    fn path(&self, name: &str) -> Result<PathBuf, FileError> {
        let plain = !name.is_empty()
            && name != "."
            && name != ".."
            && !name.contains(['/', '\\'])
            && !name.starts_with(".upload-");
        if plain {
            Ok(self.dir.join(name))
        } else {
            Err(FileError::BadName(name.into()))
        }
    }
}

fn io_error(e: std::io::Error) -> FileError {
    FileError::Io(e.to_string())
}

impl Files for FileStore {
    async fn download(&self, name: String) -> Result<rmi::Stream<Vec<u8>>, FileError> {
        let path = self.path(&name)?;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => FileError::NotFound(name.clone()),
                _ => io_error(e),
            })?;
        Ok(chunks_of(file))
    }

    async fn upload(
        &self,
        name: String,
        mut chunks: rmi::Stream<Vec<u8>>,
    ) -> Result<u64, FileError> {
        let path = self.path(&name)?;
        // Written aside, then renamed: a broken upload leaves the old file as it was.
        let partial = self.dir.join(format!(".upload-{}", rmi::new_object_id()));
        let written = write_chunks(&partial, &mut chunks).await;
        match written {
            Ok(bytes) => {
                tokio::fs::rename(&partial, &path).await.map_err(io_error)?;
                Ok(bytes)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&partial).await;
                Err(e)
            }
        }
    }

    async fn list(&self) -> Result<Vec<(String, u64)>, FileError> {
        let mut files = Vec::new();
        let mut entries = tokio::fs::read_dir(&self.dir).await.map_err(io_error)?;
        while let Some(entry) = entries.next_entry().await.map_err(io_error)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            let meta = entry.metadata().await.map_err(io_error)?;
            if meta.is_file() && !name.starts_with(".upload-") {
                files.push((name, meta.len()));
            }
        }
        files.sort();
        Ok(files)
    }
}

/// Writes every chunk to a new file at `path`; how many bytes.
async fn write_chunks(path: &Path, chunks: &mut rmi::Stream<Vec<u8>>) -> Result<u64, FileError> {
    let mut file = tokio::fs::File::create(path).await.map_err(io_error)?;
    let mut bytes = 0;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| FileError::Io(e.to_string()))?;
        file.write_all(&chunk).await.map_err(io_error)?;
        bytes += chunk.len() as u64;
    }
    file.flush().await.map_err(io_error)?;
    Ok(bytes)
}

/// How many chunks are read ahead of the other side: a task reads the file while the last
/// chunks travel, so that each batch the other side asks for is full (a read from a file is
/// a trip to tokio's blocking pool, too slow to make on demand, chunk by chunk).
const READ_AHEAD: usize = 16;

/// `file`'s bytes as a stream of chunks of 64 KiB, read ahead by a task of its own: what a
/// client uploads, and what the server sends for a download. A failed read ends the stream
/// with the error, so the other side keeps nothing; dropping the stream stops the reading.
pub fn chunks_of(file: tokio::fs::File) -> rmi::Stream<Vec<u8>> {
    let (sender, mut receiver) = tokio::sync::mpsc::channel(READ_AHEAD);
    tokio::spawn(read_chunks(file, sender));
    rmi::Stream::try_new(futures::stream::poll_fn(move |cx| receiver.poll_recv(cx)))
}

/// Sends `file`'s chunks to `chunks`, then its read error if any; stops when the stream is
/// dropped (the send fails).
async fn read_chunks(
    mut file: tokio::fs::File,
    chunks: tokio::sync::mpsc::Sender<std::io::Result<Vec<u8>>>,
) {
    loop {
        let chunk = read_chunk(&mut file).await;
        let last = !matches!(&chunk, Ok(chunk) if !chunk.is_empty());
        if matches!(&chunk, Ok(chunk) if chunk.is_empty()) {
            return;
        }
        if chunks.send(chunk).await.is_err() || last {
            return;
        }
    }
}

/// The next chunk of `file`: full but for the last, empty at the end.
async fn read_chunk(file: &mut tokio::fs::File) -> std::io::Result<Vec<u8>> {
    let mut chunk = vec![0; CHUNK_BYTES];
    let mut filled = 0;
    while filled < CHUNK_BYTES {
        match file.read(&mut chunk[filled..]).await? {
            0 => break,
            n => filled += n,
        }
    }
    chunk.truncate(filled);
    Ok(chunk)
}
