"""dev/markdown_section.py: the one writer of the generated sections of docs/*.md.

A generated section sits between two HTML comments, `<!-- NAME: begin -->` and `<!-- NAME: end -->`;
the script that makes it rewrites that span and keeps the rest of the file. Used by the
benchmarks (docs/benchmarks.md) and the experiments (docs/results.md), with cpu_model() for the
machine line each of them states.
"""
import os


def cpu_model():
    """The CPU's name, for the machine line of a section."""
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def markers(name):
    """The begin and end comments of section NAME."""
    return f"<!-- {name}: begin -->", f"<!-- {name}: end -->"


def replace_section(path, begin, end, section, new_file_text=""):
    """Puts SECTION (which starts with BEGIN and ends with END) in place of the span between the
    markers in PATH, or appends it; a missing PATH starts as NEW_FILE_TEXT."""
    text = open(path).read() if os.path.exists(path) else new_file_text
    if begin in text and end in text:
        text = text[:text.index(begin)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def write_section(path, name, lines, write=True):
    """Section NAME of PATH from LINES (the markers added around them): printed, and put in place
    of the section's old text unless WRITE is false. Returns the section's text."""
    begin, end = markers(name)
    text = "\n".join([begin, *lines, end])
    print(text)
    if write:
        replace_section(path, begin, end, text)
    return text
