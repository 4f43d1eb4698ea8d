//! The files demo across processes: `files_client` uploads a file to `files_server` and
//! downloads it again, byte for byte; names that are not plain file names are refused.

use rmi_tests::{example, run, stderr, stdout, temp_dir, NameServer, Running};

#[test]
fn a_file_goes_up_and_comes_back_the_same() {
    let ns = NameServer::start();
    let dir = temp_dir("files");
    let stored = dir.path().join("stored");
    let mut server_command = ns.client(example("files_server"));
    server_command.arg("--dir").arg(&stored);
    let mut server = Running::start("files_server", server_command);
    server.expect_line("Files ready");

    // 5 MiB and a bit: many chunks, and a last one that is not full.
    let original: Vec<u8> = (0..5 * 1024 * 1024 + 123)
        .map(|i| (i % 251) as u8)
        .collect();
    let sent = dir.path().join("photo.raw");
    std::fs::write(&sent, &original).unwrap();

    let mut upload = ns.client(example("files_client"));
    upload.arg("upload").arg(&sent);
    let output = run(&mut upload, "");
    assert!(output.status.success(), "upload: {}", stderr(&output));
    let said = stdout(&output);
    assert!(
        said.starts_with(&format!(
            "Uploaded {} bytes as photo.raw in ",
            original.len()
        )) && said.contains(" MB/s)"),
        "{said}"
    );
    assert_eq!(std::fs::read(stored.join("photo.raw")).unwrap(), original);

    let back = dir.path().join("back.raw");
    let mut download = ns.client(example("files_client"));
    download
        .arg("download")
        .arg("photo.raw")
        .arg("--out")
        .arg(&back);
    let output = run(&mut download, "");
    assert!(output.status.success(), "download: {}", stderr(&output));
    let said = stdout(&output);
    let expected = format!("Downloaded {} bytes into", original.len());
    assert!(said.starts_with(&expected), "{said}");
    assert_eq!(std::fs::read(&back).unwrap(), original);

    let mut list = ns.client(example("files_client"));
    list.arg("list");
    let output = run(&mut list, "");
    let said = stdout(&output);
    assert!(
        said.contains(&format!("{}  photo.raw", original.len())),
        "{said}"
    );

    for (name, why) in [
        ("../escape", "not a plain file name"),
        ("missing", "no file 'missing'"),
    ] {
        let mut download = ns.client(example("files_client"));
        download
            .arg("download")
            .arg(name)
            .arg("--out")
            .arg(dir.path().join("x"));
        let output = run(&mut download, "");
        assert!(!output.status.success(), "{name} was served");
        assert!(stderr(&output).contains(why), "{}", stderr(&output));
    }
}
