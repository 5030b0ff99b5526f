# Prints the SAM-transformed form of a template (argv[1]) as JSON: cfn-lint's own decoder and SAM
# transform (aws-sam-translator, offline: local CodeUri replaced by a placeholder S3 location), exactly
# what cfn-lint lints. Run by templatecheck.Transform; non-zero exit with the reasons on stderr if it fails.
import json
import sys

try:
    from cfnlint.decode import decode
    from cfnlint.template.transforms._sam import Transform
except ImportError as err:
    sys.exit(f"cfn-lint with aws-sam-translator is not importable by {sys.executable}: {err} "
             "(pip install cfn-lint==1.51.0 brings both)")

template, matches = decode(sys.argv[1])
if matches:
    sys.exit("\n".join(str(m) for m in matches))
transform = Transform(sys.argv[1], template, "us-east-1")
matches = transform.transform_template()
if matches:
    sys.exit("\n".join(str(m) for m in matches))
json.dump(transform.template(), sys.stdout, sort_keys=True, indent=1)
