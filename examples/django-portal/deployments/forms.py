from django import forms
from django.core.validators import RegexValidator

# Only the shape is checked here; the patterns of the parameters are the
# target's DeployParam lines, and mod_deploy's refusal (400 invalid_param)
# is shown on the form.
NAME = RegexValidator(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", "letters, digits, '.', '_', '-'")


class DeployForm(forms.Form):
    target = forms.CharField(max_length=64, validators=[NAME], widget=forms.Select)
    vm = forms.CharField(max_length=64, label="VM")
    version = forms.CharField(max_length=64)

    def __init__(self, *args, targets=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].widget.choices = [(t, t) for t in targets]
