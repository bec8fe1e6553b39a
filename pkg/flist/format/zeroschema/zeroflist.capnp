# Cap'n Proto schema of the 0-flist (v0.4 era) directory entries, written from
# the field table of shared/specs/flist.md §5. Field names, ordinals and types
# define the wire layout; they must not change.
@0xae9223e76351538a;

using Go = import "/go.capnp";
$Go.package("zeroschema");
$Go.import("github.com/zos-go/zos/pkg/flist/format/zeroschema");

struct FileBlock {
  hash @0 :Data; # storage key of the encrypted block
  key  @1 :Data; # decryption key (hash of the plain block)
}

struct File {
  blockSize @0 :UInt16;          # chunk size in 4 KiB units
  blocks    @1 :List(FileBlock);
}

struct Link {
  target @0 :Text;
}

struct Special {
  type @0 :Type;
  enum Type {
    socket   @0;
    block    @1;
    chardev  @2;
    fifopipe @3;
    unknown  @4;
  }
  data @1 :Data; # "major,minor" for devices
}

struct SubDir {
  key @0 :Text; # entries key of the child directory
}

struct Inode {
  name @0 :Text;
  size @1 :UInt64;
  attributes :union {
    dir     @2 :SubDir;
    file    @3 :File;
    link    @4 :Link;
    special @5 :Special;
  }
  aclkey           @6 :Text;
  modificationTime @7 :UInt32;
  creationTime     @8 :UInt32;
}

struct Dir {
  name             @0 :Text;
  location         @1 :Text;
  contents         @2 :List(Inode);
  parent           @3 :Text;
  size             @4 :UInt64;
  aclkey           @5 :Text;
  modificationTime @6 :UInt32;
  creationTime     @7 :UInt32;
}

struct ACI {
  uname  @0 :Text;
  gname  @1 :Text;
  mode   @2 :UInt16;
  rights @3 :List(Right);
  struct Right {
    right       @0 :Text;
    usergroupid @1 :UInt16;
  }
  id  @4 :UInt32;
  uid @5 :Int64 = -1;
  gid @6 :Int64 = -1;
}
