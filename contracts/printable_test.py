from contracts import printable


def test_control_characters_are_escaped_and_the_rest_is_kept():
  assert printable.one_line('benign/a\nb\tc\x7f.png') == 'benign/a\\nb\\tc\\x7f.png'
  assert printable.one_line('malignant/ümlaut (1).png') == 'malignant/ümlaut (1).png'
