#!/usr/bin/python3
"""Writes several small text files into one directory in one step.

The template module costs a round trip and a Python start on the host per file; HAProxy's own
answers are sixteen files of a few hundred bytes, rendered on the controller (the template
lookup) and written here at once: each only when its content, owner, group or mode differs,
atomically (a temporary file in the same directory, then a rename), so HAProxy never reads half of
one. Reports changed when any file did, a diff per changed file with --diff, and changes nothing
with --check (where a directory not made yet means every file is new). Files of the directory
that are not named are left alone.
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_text

DOCUMENTATION = r"""
module: tandem_files
short_description: Write several small text files into one directory in one step
options:
  directory:
    description: The directory, which must exist.
    type: path
    required: true
  files:
    description: File name (no slash) to its whole content.
    type: dict
    required: true
extends_documentation_fragment: [files]
"""


def read(path):
    try:
        with open(path, "rb") as current:
            return current.read()
    except FileNotFoundError:
        return None


def write(module, directory, path, content):
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".tandem_files.")
    try:
        with os.fdopen(descriptor, "wb") as staged:
            staged.write(content)
        module.atomic_move(temporary, path, unsafe_writes=module.params["unsafe_writes"])
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def main():
    module = AnsibleModule(
        argument_spec={"directory": {"type": "path", "required": True},
                       "files": {"type": "dict", "required": True}},
        add_file_common_args=True,
        supports_check_mode=True,
    )
    directory = module.params["directory"]
    files = module.params["files"]
    # Every entry checked before any file is written: a bad one leaves nothing half done.
    for name, content in files.items():
        if not name or "/" in name or name in (".", ".."):
            module.fail_json(msg=f"{name!r} is not a file name")
        if not isinstance(content, str):
            module.fail_json(msg=f"the content of {name} is a {type(content).__name__}, not text")
    if not os.path.isdir(directory) and not module.check_mode:
        module.fail_json(msg=f"{directory} is not a directory")
    changed_files, diffs = [], []
    for name in sorted(files):
        path = os.path.join(directory, name)
        content = to_bytes(files[name])
        before = read(path)
        changed = before != content
        if changed:
            diffs.append({"before_header": path, "after_header": path,
                          "before": to_text(before or b""), "after": to_text(content)})
            if not module.check_mode:
                write(module, directory, path, content)
        if os.path.exists(path):
            file_args = module.load_file_common_arguments(module.params, path=path)
            attributes = {"before_header": path, "after_header": path, "before": {}, "after": {}}
            if module.set_fs_attributes_if_different(file_args, False, diff=attributes):
                changed = True
                diffs.append(attributes)
        if changed:
            changed_files.append(name)
    module.exit_json(changed=bool(changed_files), changed_files=changed_files,
                     diff=diffs if module._diff else [])


if __name__ == "__main__":
    main()
