"""The few file operations the sinks need beyond DataFrame writes (rename part files, write a manifest,
clear a staging folder), through the session's own Hadoop FileSystem: the same URIs, credentials and
settings as Spark's reads and writes, on file://, s3a://, abfss://, gs:// or hdfs:// alike.
Needs a classic (JVM) session; the mapping itself does not."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import SparkSession


@dataclass(frozen=True)
class FileStatus:
    uri: str
    name: str
    is_dir: bool
    size: int


def _status(status) -> FileStatus:
    """A Hadoop FileStatus (py4j) as ours."""
    path = status.getPath()
    return FileStatus(str(path.toString()), str(path.getName()), bool(status.isDirectory()), int(status.getLen()))


class HadoopFS:
    def __init__(self, spark: SparkSession) -> None:
        context = spark.sparkContext
        # Both are None only in a Spark Connect or executor-side context, where there is no JVM to reach.
        if context._jvm is None or context._jsc is None:
            raise RuntimeError("HadoopFS needs a classic (JVM) Spark session")
        self._jvm = context._jvm
        self._conf = context._jsc.hadoopConfiguration()

    def _path(self, uri: str):
        return self._jvm.org.apache.hadoop.fs.Path(uri)

    def _fs(self, path):
        return path.getFileSystem(self._conf)

    def qualify(self, uri: str) -> str:
        """The fully qualified URI (file:/x → file:/x, x → file:/cwd/x), as Spark writes it."""
        path = self._path(uri)
        return str(self._fs(path).makeQualified(path).toString())

    def url(self, uri: str) -> str:
        """The qualified URI as a URL other tools accept: Hadoop writes local paths as file:/x, not file:///x."""
        qualified = self.qualify(uri)
        if qualified.startswith("file:/") and not qualified.startswith("file://"):
            return "file://" + qualified.removeprefix("file:")
        return qualified

    def exists(self, uri: str) -> bool:
        path = self._path(uri)
        return bool(self._fs(path).exists(path))

    def is_dir(self, uri: str) -> bool:
        path = self._path(uri)
        fs = self._fs(path)
        return bool(fs.exists(path) and fs.getFileStatus(path).isDirectory())

    def list_dir(self, uri: str) -> list[FileStatus]:
        path = self._path(uri)
        fs = self._fs(path)
        if not fs.exists(path):
            return []
        return [_status(s) for s in fs.listStatus(path)]

    def list_files(self, uri: str) -> list[FileStatus]:
        """Every file under a folder, recursively: a flat listing on object stores (one request per 1,000)."""
        path = self._path(uri)
        fs = self._fs(path)
        if not fs.exists(path):
            return []
        found = []
        files = fs.listFiles(path, True)
        while files.hasNext():
            found.append(_status(files.next()))
        return found

    def delete(self, uri: str) -> None:
        path = self._path(uri)
        self._fs(path).delete(path, True)

    def rename(self, source: str, target: str) -> None:
        src = self._path(source)
        dst = self._path(target)
        fs = self._fs(src)
        fs.mkdirs(dst.getParent())
        if not fs.rename(src, dst):
            raise OSError(f"cannot rename {source} to {target}")

    def read_bytes(self, uri: str) -> bytes:
        """A small file whole."""
        path = self._path(uri)
        stream = self._fs(path).open(path)
        try:
            return bytes(stream.readAllBytes())
        finally:
            stream.close()

    def modified_ms(self, uri: str) -> int:
        """A file's modification time, in ms since the epoch, as its file system stamps it."""
        path = self._path(uri)
        return int(self._fs(path).getFileStatus(path).getModificationTime())

    def create_new(self, uri: str, data: bytes) -> bool:
        """Write a small file that must not exist yet; False when it does. Atomic where the file system's
        create-without-overwrite is (local, HDFS, ABFS; S3 with conditional writes)."""
        path = self._path(uri)
        try:
            self._write(path, data, overwrite=False)
        except Exception:
            if self._fs(path).exists(path):  # FileAlreadyExistsException, or a store's refused conditional write
                return False
            raise
        return True

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Write a small file whole (overwriting). On object stores the object appears only on close."""
        self._write(self._path(uri), data, overwrite=True)

    def _write(self, path, data: bytes, *, overwrite: bool) -> None:
        stream = self._fs(path).create(path, overwrite)
        try:
            stream.write(bytearray(data))
        finally:
            stream.close()  # an object store writes here, and may refuse here
